"""The JSON Schema of the spec format (docs/spec.md describes the format), for editors:
`rnnc schema` prints it and the files in specs/ point yaml-language-server at it. It
describes the shape of a spec; rnnc's own checks (names that exist, shapes that agree,
equations) go further."""

from __future__ import annotations

import json

IDENTIFIER = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}
POSITIVE = {"type": "integer", "minimum": 1}
SIZE = {"oneOf": [POSITIVE, {"type": "string",
                             "pattern": r"^\s*(\d+\s*\*\s*)?(units|input|\d+)"
                                        r"(\s*\+\s*(\d+\s*\*\s*)?(units|input|\d+))*\s*$"}]}
RATE = {"type": "number", "minimum": 0, "exclusiveMaximum": 1,
        "description": "the fraction of values dropped while training"}
INITIALIZERS = ["glorot_uniform", "orthogonal", "zeros", "ones", "normal", "uniform"]


def _object(properties: dict, required=(), description: str = "") -> dict:
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


ARRAY = {**_object({
    "features": POSITIVE,
    "classes": {**POSITIVE, "description": "class ids from 0 to classes - 1, instead of "
                                           "features: [batch, steps] or [batch] ints"},
    "sequence": {"type": "boolean", "default": True},
    "steps": POSITIVE,
    "lengths": {"type": "boolean", "default": False},
}, (), "[batch, steps, features] (a sequence) or [batch, features]; with classes, "
       "[batch, steps] or [batch] class ids"),
    "oneOf": [{"required": ["features"]}, {"required": ["classes"]}]}

SHAPE = {"type": "array", "items": SIZE, "minItems": 1, "maxItems": 2}
CELL = _object({
    "state": {"oneOf": [IDENTIFIER, {"type": "array", "items": IDENTIFIER, "minItems": 1}]},
    "output": IDENTIFIER,
    "params": {"type": "object", "additionalProperties": {"oneOf": [
        SHAPE, _object({"shape": SHAPE, "init": {"enum": INITIALIZERS}}, ["shape"])]}},
    "equations": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
}, ["state", "params", "equations"], "a cell written for one example (docs/spec.md, Custom cells)")

RNN = _object({
    "name": IDENTIFIER, "type": {"const": "rnn"}, "cell": {"type": "string"},
    "units": POSITIVE, "input": {"type": "string"},
    "return": {"enum": ["last", "sequence"]},
    "direction": {"enum": ["forward", "backward", "bidirectional"]},
    "initial_state": {"type": "object", "additionalProperties": {"type": "string"}},
    "steps": POSITIVE, "feedback": {"type": "string"},
    "dropout": RATE, "recurrent_dropout": RATE,
}, ["name", "type", "cell", "units"])
DENSE = _object({
    "name": IDENTIFIER, "type": {"const": "dense"}, "units": POSITIVE,
    "input": {"type": "string"},
    "activation": {"enum": ["linear", "tanh", "sigmoid", "relu", "softmax"]},
}, ["name", "type", "units", "input"])
REPEAT = _object({"name": IDENTIFIER, "type": {"const": "repeat"},
                  "input": {"type": "string"}, "steps": POSITIVE},
                 ["name", "type", "input", "steps"])
EMBEDDING = _object({"name": IDENTIFIER, "type": {"const": "embedding"},
                     "input": {"type": "string"}, "units": POSITIVE,
                     "padding_id": {"type": "integer", "minimum": 0}},
                    ["name", "type", "input", "units"])
DROPOUT = _object({"name": IDENTIFIER, "type": {"const": "dropout"},
                   "input": {"type": "string"}, "rate": RATE},
                  ["name", "type", "input", "rate"])


def schema() -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "rnnc spec, format version 1",
        "description": "A recurrent network for rnncompiler; the format is described in "
                       "docs/spec.md.",
        **_object({
            "rnnc": {"const": 1},
            "name": IDENTIFIER,
            "dtype": {"enum": ["float32", "float64"]},
            "inputs": {"type": "object", "additionalProperties": ARRAY},
            "targets": {"type": "object", "additionalProperties": ARRAY},
            "cells": {"type": "object", "additionalProperties": CELL},
            "layers": {"type": "array", "minItems": 1,
                       "items": {"oneOf": [RNN, DENSE, REPEAT, EMBEDDING, DROPOUT]}},
            "outputs": {"oneOf": [{"type": "string"},
                                  {"type": "array", "items": {"type": "string"}}]},
            "loss": _object({"type": {"enum": ["mse", "cross_entropy"]},
                             "output": {"type": "string"}, "target": {"type": "string"}},
                            ["type", "output", "target"]),
            "unroll": _object({"steps": POSITIVE, "bptt": {"oneOf": [
                {"const": "full"}, _object({"window": POSITIVE}, ["window"]),
                _object({"chunk": POSITIVE}, ["chunk"])]},
                "checkpoint": {"oneOf": [POSITIVE, {"const": "auto"}]}}),
        }, ["rnnc", "name", "layers"]),
    }


def schema_text() -> str:
    return json.dumps(schema(), indent=2) + "\n"
