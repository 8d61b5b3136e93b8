"""Triton kernels of fastgen, installed as ``fastgen.kernels``. Imports only torch and triton."""
