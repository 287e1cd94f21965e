"""The DMTF CIMI interface (DSP0263 2.0) over the same service as OCCI."""
