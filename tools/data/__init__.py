"""Data tooling: the kit's generated SIGNS files, real photos imported or downloaded, and the realism check."""
