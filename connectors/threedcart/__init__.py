"""3DCart / Shift4Shop REST API."""
