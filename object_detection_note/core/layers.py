"""The package's layer order, lowest floor first (docs/architecture.md).

A module of ``object_detection_note`` may import modules of its own package
and of packages on lower floors, never of a package on its own floor or a
higher one; packages never import one another in a circle.
``tests/test_layering.py`` parses every module's imports (top-level and
function-local) and checks both rules against ``LAYERS``.

Each floor is a tuple of packages, named relative to ``object_detection_note``
(a dotted name such as ``data.records`` is a sub-package with its own floor).
A module belongs to the longest name that prefixes it. The top floor holds
the binaries at the package root.
"""

LAYERS = (
    ('protos',),
    ('core',),
    ('models', 'heads', 'losses'),
    ('meta_architectures',),
    ('data.records',),
    ('data.input', 'data.writing'),
    ('data.formats',),
    ('config',),
    ('builders', 'checkpoints'),
    ('evaluation',),
    ('training', 'exporter'),
    ('mining',),
    ('iterate',),
    ('exporter_main_v2', 'infer', 'mine_boxes', 'model_main_tf2',
     'pretrained'),
)
