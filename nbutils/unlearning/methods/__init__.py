"""One module per unlearning method; importing this package registers them all."""

from . import altpo, gradascent, graddiff, idk, npo, rmu, simnpo, task_vector, undial, whp  # noqa: F401
