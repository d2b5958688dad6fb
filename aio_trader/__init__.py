"""aio_trader: async (anyio) clients for Indian stockbroker APIs."""

__version__ = "0.1.0"
