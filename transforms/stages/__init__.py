"""Pure steps between reading and writing: normalize, costs, metrics, the run summary."""
