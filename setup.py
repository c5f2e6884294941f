"""Package definition; the build compiles protos/*.proto (see build_protos.py)."""
import os
import sys

from setuptools import find_packages
from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_protos  # pylint: disable=g-import-not-at-top,wrong-import-position


class BuildPyWithProtos(build_py):
  """Generates the *_pb2.py modules before collecting the package's files."""

  def run(self):
    build_protos.compile_protos()
    super().run()


INSTALL_REQUIRES = [
    'tensorflow~=2.20.0',
    'tf-keras~=2.20.0',
    'tf-models-official==2.20.0',
    'tf-slim>=1.1.0',
    'protobuf>=6.31.1,<7',
    'pycocotools>=2.0.7',
    'lvis==0.5.3',
    'absl-py>=1.4.0',
    'contextlib2>=21.6.0',
    'apache-beam[tfrecord]==2.77.0',
    'google-crc32c>=1.5',  # fast TFRecord checksums for Beam
    'pillow>=10,<13',
    'matplotlib>=3.8',
    'numpy>=1.26',
]

setup(
    name='object-detection-note',
    version='0.1.0',
    description=('NOTE-RCNN: noise-tolerant ensemble Faster R-CNN for '
                 'semi-supervised detection, format-compatible with the '
                 'TensorFlow Object Detection API'),
    python_requires='>=3.10,<3.13',
    packages=find_packages(include=['object_detection_note',
                                    'object_detection_note.*']),
    install_requires=INSTALL_REQUIRES,
    extras_require={
        'test': ['pytest>=8', 'pytest-xdist>=3.5', 'grpcio-tools>=1.78,<1.80',
                 'apache-beam[dask]==2.77.0'],
        # Dataflow and gs:// paths in Beam I/O.
        'gcp': ['apache-beam[gcp]==2.77.0'],
        # Beam's DaskRunner on a dask.distributed cluster.
        'dask': ['apache-beam[dask]==2.77.0'],
    },
    cmdclass={'build_py': BuildPyWithProtos},
)
