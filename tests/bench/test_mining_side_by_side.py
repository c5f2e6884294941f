"""Mining side-by-side bookkeeping (bench/mining_side_by_side.py), no peer."""
import os
import sys

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'bench')
if BENCH not in sys.path:
  sys.path.insert(0, BENCH)

import mining_side_by_side as sbs  # pylint: disable=g-import-not-at-top,wrong-import-position


def _run(side, round_index, images, wall, cpu):
  return {'side': side, 'round': round_index, 'images_requested': images,
          'images': images, 'process_seconds': wall, 'cpu_seconds': cpu}


def test_marginal_figures_cancel_fixed_costs_and_ratio_is_per_cpu():
  # ours: 30 s start + 10 s/image wall, 50 CPU-s + 15 CPU-s/image;
  # odapi: 40 s + 20 s/image, 60 + 30 CPU-s/image.
  runs = []
  for r in range(2):
    for n in (1, 4):
      runs.append(_run('ours/float32', r, n, 30 + 10 * n, 50 + 15 * n))
      runs.append(_run('odapi', r, n, 40 + 20 * n, 60 + 30 * n))
  runs.append(dict(_run('odapi', 2, 4, 1.0, 1.0), error='boom'))
  summary, ratios = sbs.summarise(runs, ['ours/float32', 'odapi'], [1, 4])
  assert abs(summary['ours/float32']['marginal_images_per_s'] - 0.1) < 1e-9
  assert abs(summary['ours/float32']['marginal_cpu_s_per_image'] - 15) < 1e-9
  assert abs(summary['odapi']['marginal_cpu_s_per_image'] - 30) < 1e-9
  assert abs(summary['odapi']['end_to_end_images_per_s'] - 4 / 120) < 1e-9
  assert abs(ratios['ours/float32_over_odapi_images_per_cpu_s'] - 2.0) < 1e-9


def test_single_count_has_only_end_to_end_figures():
  runs = [_run('ours/float32', 0, 3, 30.0, 60.0)]
  summary, ratios = sbs.summarise(runs, ['ours/float32'], [3])
  assert summary['ours/float32']['end_to_end_images_per_s'] == 0.1
  assert summary['ours/float32']['marginal_cpu_s_per_image'] is None
  assert ratios == {}


def test_cpu_flags_read_from_cpuinfo(tmp_path):
  path = tmp_path / 'cpuinfo'
  path.write_text('model name\t: X\nflags\t\t: fpu avx2 avx512f avx512_bf16\n')
  flags = sbs.cpu_flags(str(path))
  assert flags['avx512f'] and flags['avx512_bf16'] and flags['avx2']
  assert not flags['amx_tile'] and not flags['amx_bf16']
  assert sbs.cpu_flags(str(tmp_path / 'missing')) == {}


def test_images_are_valid_image_level_records(tmp_path):
  from object_detection_note.data.records import record_errors
  from object_detection_note.data.records import tf_example_codec
  path = str(tmp_path / 'images.tfrecord')
  sbs.write_images(path, 2)
  records = [s for _, s in record_errors.iterate_file_records(path)]
  assert len(records) == 2
  for serialized in records:
    record, _, problem = record_errors.decode_checked(
        serialized, sorted(sbs.id_to_name()),
        tf_example_codec.example_to_record)
    assert problem == ''
    assert (record.height, record.width) == (600, 1024)
    assert len(record.image_labels) == 1
    assert record.image_label_texts == [
        sbs.id_to_name()[int(record.image_labels[0])]]
