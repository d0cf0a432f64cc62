"""The serving gateway (FastAPI, vLLM backends, Redis budget state). Built in the gateway issue."""
