"""One module per unlearning method; importing this package registers them all."""

from . import altpo, ceu, gradascent, graddiff, idk, npo, pdu, rmu, satimp, simnpo, task_vector, undial, wga, whp  # noqa: F401
