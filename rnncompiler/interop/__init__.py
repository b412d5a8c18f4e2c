"""Other frameworks' models and parameters: PyTorch state_dicts, ONNX models and Keras
files read into specs, and the parameter layouts of all three.
"""
