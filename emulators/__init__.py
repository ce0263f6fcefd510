"""Stand-ins for Prism Central and CloudForet (the demo, the tests, users' dry runs).

Every ``python -m emulators.X`` imports this package first: Beam's import-time
"apitools not found" line is kept out of their output as it is out of the collector's.
"""
from pipeline.import_noise import drop_import_noise

drop_import_noise()
