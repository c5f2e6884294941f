"""Temporaries of killed runs are removed by the next run; nothing else."""
import os

import tensorflow as tf

from object_detection_note.core import stale_files

_HEX = '0123456789abcdef' * 2


def test_removes_atomic_and_checkpoint_temporaries_only(tmp_path):
  (tmp_path / ('pipeline.config.tmp-' + _HEX)).write_text('half')
  (tmp_path / ('metrics.json.tmp-' + _HEX)).write_text('{')
  (tmp_path / 'ckpt-7_temp').mkdir()
  (tmp_path / 'ckpt-7_temp' / 'part-00000-of-00001.index').write_text('x')
  kept = ['ckpt-6.index', 'notes.tmp', 'x.tmp-short', 'my_temp', 'ckpt-6']
  for name in kept[:-1]:
    (tmp_path / name).write_text('keep')
  (tmp_path / 'ckpt-6').mkdir()
  removed = stale_files.remove_stale_temporaries(str(tmp_path))
  assert [os.path.basename(p) for p in removed] == [
      'ckpt-7_temp', 'metrics.json.tmp-' + _HEX,
      'pipeline.config.tmp-' + _HEX]
  assert sorted(os.listdir(tmp_path)) == sorted(kept)
  assert stale_files.remove_stale_temporaries(str(tmp_path / 'absent')) == []


def test_removes_the_beam_tempdir_a_killed_pipeline_noted(tmp_path):
  beam_dir = tmp_path / 'beam-pipeline-temp123'
  beam_dir.mkdir()

  class _Pipeline:
    local_tempdir = str(beam_dir)

  out = tmp_path / 'out'
  out.mkdir()
  with stale_files.tracking_beam_tempdir(_Pipeline(), str(out)):
    notes = os.listdir(out)
    assert len(notes) == 1
    assert notes[0].startswith(stale_files.BEAM_TEMPDIR_MARKER)
  assert os.listdir(out) == []  # a normal end removes the note
  # A killed run leaves the note (and the directory): the next run cleans up.
  (out / (stale_files.BEAM_TEMPDIR_MARKER + '99')).write_text(str(beam_dir))
  assert stale_files.remove_stale_temporaries(str(out)) == [str(beam_dir)]
  assert not beam_dir.exists() and os.listdir(out) == []


def test_remove_stale_siblings_of_an_export(tmp_path):
  staging = tmp_path / ('exported.tmp-' + _HEX)
  staging.mkdir()
  (staging / 'saved_model').mkdir()
  other = tmp_path / ('other.tmp-' + _HEX)
  other.mkdir()
  removed = stale_files.remove_stale_siblings(str(tmp_path / 'exported') + '/')
  assert removed == [str(staging)]
  assert other.exists() and not staging.exists()
  assert tf.io.gfile.exists(str(other))
