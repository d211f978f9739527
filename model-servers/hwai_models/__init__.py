"""hwai model servers: one FastAPI app for every task and accelerator backend."""

__version__ = "0.1.0"
