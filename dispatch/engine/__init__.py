"""Pure dispatch algorithms: plain data in, plain data out, no Django import."""
