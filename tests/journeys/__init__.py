"""Users' workflows through real mlrun processes, several features at once."""
