"""What every part of sentilite uses: errors, safe file I/O, config helpers.

Nothing here imports beyond the standard library and numpy, so the runtime
can rely on it on a device.
"""
