"""The shipped sampling settings: chosen on validation primes for the packaged model (structure of its
continuations against the pianist's: motif reuse, key fit, chords, velocity, register drift), used by
``sample``, the Python API, the studio and the gallery."""

DEFAULT_TEMPERATURE = 0.9  # pitch
DEFAULT_TOP_P = 0.95  # nucleus sampling of pitch
DEFAULT_TIMING_TEMPERATURE = 1.1  # step, duration and velocity: at the pitch's 0.9 the velocity runs ~5 loud
