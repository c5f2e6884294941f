"""Compiles protos/*.proto into object_detection_note/protos/*_pb2.py.

Used by setup.py (every build and editable install) and by `make protos`.
The compiler is grpcio-tools' bundled protoc, whose version is pinned to match
the protobuf runtime, so users never install protoc themselves.

Each .proto imports the others as "object_detection_note/protos/<name>.proto";
the include mapping below makes that virtual path point at protos/.
"""
import glob
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(ROOT, 'protos')
VIRTUAL_DIR = 'object_detection_note/protos'


def proto_files(proto_dir=PROTO_DIR):
  return sorted(glob.glob(os.path.join(proto_dir, '*.proto')))


def compile_protos(output_root=ROOT, proto_dir=PROTO_DIR):
  """Writes <output_root>/object_detection_note/protos/<name>_pb2.py files."""
  from grpc_tools import protoc  # pylint: disable=g-import-not-at-top
  import importlib.resources  # pylint: disable=g-import-not-at-top
  well_known = str(importlib.resources.files('grpc_tools') / '_proto')
  files = proto_files(proto_dir)
  if not files:
    raise RuntimeError('no .proto files found in %s' % proto_dir)
  os.makedirs(os.path.join(output_root, VIRTUAL_DIR), exist_ok=True)
  args = [
      'grpc_tools.protoc',
      '-I%s=%s' % (VIRTUAL_DIR, proto_dir),
      '-I%s' % well_known,
      '--python_out=%s' % output_root,
  ] + files
  if protoc.main(args) != 0:
    raise RuntimeError('protoc failed on %s' % ' '.join(files))
  return files


if __name__ == '__main__':
  out = sys.argv[1] if len(sys.argv) > 1 else ROOT
  compiled = compile_protos(out)
  print('compiled %d protos into %s' % (len(compiled),
                                        os.path.join(out, VIRTUAL_DIR)))
