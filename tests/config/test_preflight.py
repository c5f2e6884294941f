"""The preflight: every missing file of a run, each with its fix."""
from object_detection_note.config import config_util
from object_detection_note.config import preflight


def _configs(text):
  return config_util.create_configs_from_pipeline_proto(
      config_util.parse_pipeline_text(text))


def test_reader_problems_list_each_missing_path_once(tmp_path):
  (tmp_path / 'a-00000').write_text('')
  text = '''
train_input_reader {
  label_map_path: "%(d)s/coco/map.pbtxt"
  tf_record_input_reader { input_path: ["%(d)s/a-*", "%(d)s/coco/b-*"] }
}
eval_input_reader {
  label_map_path: "%(d)s/coco/map.pbtxt"
  tf_record_input_reader { input_path: "%(d)s/coco/b-*" }
}''' % {'d': tmp_path}
  problems = preflight.pipeline_problems(_configs(text), 'p.config')
  coco = 'python pipelines/create_coco17_tfrecords.py --help'
  assert problems == [
      preflight.Problem('p.config: train_input_reader: no file matches '
                        '%s/coco/b-*' % tmp_path, coco),
      preflight.Problem('p.config: train_input_reader.label_map_path: '
                        '%s/coco/map.pbtxt not found' % tmp_path, coco)]


def test_fine_tune_checkpoint_kinds(tmp_path):
  (tmp_path / 'ckpt-3.index').write_text('')
  (tmp_path / 'w.h5').write_text('')
  base = '''model { faster_rcnn { feature_extractor {
    type: "faster_rcnn_resnet50_keras" } } }
train_config { fine_tune_checkpoint: "%s" %s }'''
  for present in ('ckpt-3', 'w.h5'):
    configs = _configs(base % (tmp_path / present, ''))
    assert preflight.fine_tune_problems(configs, 'p.config') == []
  configs = _configs(base % (tmp_path / 'pre' / 'r50.h5',
                             'fine_tune_checkpoint_type: "classification"'))
  [problem] = preflight.fine_tune_problems(configs, 'p.config')
  assert problem.fix == ('make pretrained  (i.e. python -m '
                         'object_detection_note.pretrained --model=resnet50 '
                         '--output_dir=%s)' % (tmp_path / 'pre'))
  [problem] = preflight.fine_tune_problems(
      _configs(base % (tmp_path / 'ckpt-9', '')), 'p.config')
  assert problem.what == ('p.config: train_config.fine_tune_checkpoint: '
                          '%s not found' % (tmp_path / 'ckpt-9'))
  assert 'train that checkpoint first' in problem.fix


def test_model_dir_must_be_writable(tmp_path):
  assert preflight.model_dir_problems(str(tmp_path / 'new' / 'dir')) == []
  assert (tmp_path / 'new' / 'dir').is_dir()
  assert not list((tmp_path / 'new' / 'dir').iterdir())  # probe removed
  (tmp_path / 'file').write_text('')
  [problem] = preflight.model_dir_problems(str(tmp_path / 'file' / 'run'))
  assert problem.what.startswith('--model_dir %s: not writable (' %
                                 (tmp_path / 'file' / 'run'))
