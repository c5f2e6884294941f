"""COCO 2017 → VOC/non-VOC splits: categories, boxes, crowd policy, images."""
import io

import numpy as np
from PIL import Image
import pytest

from object_detection_note.core.fields import Splits
from object_detection_note.data.formats import coco17

VOC_IDS = dict(zip(coco17.VOC_CATEGORY_NAMES,
                   (1, 2, 3, 4, 5, 6, 7, 9, 16, 17, 18, 19, 20, 21, 44, 62, 63,
                    64, 67, 72)))
OTHER = {'zebra': 24, 'giraffe': 25, 'kite': 38, 'oven': 79}
CATEGORIES = [{'id': i, 'name': n} for n, i in list(VOC_IDS.items()) +
              list(OTHER.items())]


def _coco(images):
  """images: {image id: [(category name, [x, y, w, h], iscrowd), ...]}."""
  coco = {'categories': CATEGORIES, 'images': [], 'annotations': []}
  for image_id, anns in images.items():
    coco['images'].append({'id': image_id, 'file_name': '%012d.jpg' % image_id,
                           'height': 24, 'width': 32})
    for name, bbox, crowd in anns:
      coco['annotations'].append({
          'id': len(coco['annotations']) + 1, 'image_id': image_id,
          'category_id': {**VOC_IDS, **OTHER}[name], 'bbox': bbox,
          'iscrowd': crowd})
  return coco


def test_split_categories_voc_source_rest_target():
  source, target = coco17.split_categories(_coco({}))
  assert [n for _, n in source] == sorted(
      coco17.VOC_CATEGORY_NAMES, key=lambda n: VOC_IDS[n])
  assert len(source) == 20
  assert target == [(24, 'zebra'), (25, 'giraffe'), (38, 'kite'), (79, 'oven')]
  # A COCO-format dataset without some VOC names: the VOC names it has.
  fewer = {'categories': [c for c in CATEGORIES
                          if c['name'] in ('dog', 'cat', 'zebra', 'kite')]}
  source, target = coco17.split_categories(fewer)
  assert source == [(17, 'cat'), (18, 'dog')]
  assert target == [(24, 'zebra'), (38, 'kite')]


def test_split_categories_by_name():
  source, target = coco17.split_categories(_coco({}), ['zebra', 'kite'])
  assert source == [(24, 'zebra'), (38, 'kite')]
  assert len(target) == 22
  source, target = coco17.split_categories(_coco({}), target_names=['oven'])
  assert target == [(79, 'oven')] and len(source) == 23
  source, target = coco17.split_categories(_coco({}), ['cat'], ['oven'])
  assert (source, target) == ([(17, 'cat')], [(79, 'oven')])


@pytest.mark.parametrize('source,target,message', [
    (['zebr'], None, "source categories not in the dataset: 'zebr' "
                     r"\(did you mean 'zebra'\?\)"),
    (['cat'], ['cat', 'oven'], r"categories on both sides: \['cat'\]"),
    ([n['name'] for n in CATEGORIES], None, 'leaves no target category'),
])
def test_split_categories_errors(source, target, message):
  with pytest.raises(ValueError, match=message):
    coco17.split_categories(_coco({}), source, target, origin='--flags')


def test_no_default_source_category_is_an_error():
  others = {'categories': [{'id': 1, 'name': 'digit 7'},
                           {'id': 2, 'name': 'digit 8'}]}
  with pytest.raises(ValueError, match='default split leaves no source'):
    coco17.split_categories(others)


def test_split_file(tmp_path):
  from object_detection_note.data.formats import category_split  # pylint: disable=g-import-not-at-top
  path = tmp_path / 'split.json'
  path.write_text('{"source": ["cat"], "target": ["oven", "kite"]}')
  assert category_split.read_split_file(str(path)) == (['cat'],
                                                       ['oven', 'kite'])
  path.write_text('{"sources": ["cat"]}')
  with pytest.raises(ValueError, match='split.json: expected'):
    category_split.read_split_file(str(path))
  path.write_text('{"source": "cat"}')
  with pytest.raises(ValueError, match='field source must be a list'):
    category_split.read_split_file(str(path))


def test_coco_box_conversion_and_clipping():
  box, clipped = coco17.coco_box_to_normalized([4, 6, 8, 10], 24, 32)
  np.testing.assert_allclose(box, [6 / 24, 4 / 32, 16 / 24, 12 / 32])
  assert not clipped
  box, clipped = coco17.coco_box_to_normalized([-2, 20, 40, 10], 24, 32)
  np.testing.assert_allclose(box, [20 / 24, 0.0, 1.0, 1.0])
  assert clipped


def test_records_drop_crowd_and_empty_boxes_and_count_them():
  coco = _coco({
      3: [('person', [1, 1, 5, 5], 0), ('person', [0, 0, 30, 20], 1),
          ('zebra', [2, 2, 0, 4], 0), ('oven', [30, 2, 8, 4], 0)],
      1: [],
  })
  records, stats = coco17.records_from_coco(coco)
  assert [r.source_id for r in records] == ['1', '3']
  assert records[1].class_texts == ['person', 'oven']
  assert records[1].classes.tolist() == [1, 79]
  assert records[1].filename == '000000000003.jpg'
  assert stats == {'images': 2, 'annotations': 4, 'crowd_boxes_dropped': 1,
                   'clipped_boxes': 1, 'empty_boxes_dropped': 1,
                   'images_without_boxes': 1}


def test_build_annotation_splits_follows_paper_rules():
  train = _coco({
      1: [('person', [0, 0, 10, 10], 0), ('zebra', [4, 6, 8, 10], 0)],
      2: [('dog', [0, 0, 10, 10], 0)],
      3: [('zebra', [0, 0, 5, 5], 0), ('zebra', [10, 10, 5, 5], 0)],
      4: [('giraffe', [0, 0, 5, 5], 0), ('kite', [1, 1, 5, 5], 0)],
      5: [('kite', [0, 0, 5, 5], 0)],
      6: [('oven', [0, 0, 5, 5], 0)],
      7: [('oven', [2, 2, 5, 5], 0), ('zebra', [3, 3, 5, 5], 0)],
      8: [('person', [0, 0, 30, 20], 1)],
  })
  val = _coco({10: [('car', [0, 0, 4, 4], 0), ('oven', [1, 1, 4, 4], 0)],
               11: [('giraffe', [0, 0, 4, 4], 0)]})
  splits, source_names, target_names, stats = coco17.build_annotation_splits(
      train, val, 1.0, seed=0)
  assert source_names[:3] == ['person', 'bicycle', 'car']
  assert target_names == ['zebra', 'giraffe', 'kite', 'oven']
  ids = lambda s: sorted(r.source_id for r in splits[s])
  assert ids(Splits.source_train) == ['1', '2']
  assert ids(Splits.source_val) == ['10']
  assert ids(Splits.target_val) == ['10', '11']
  assert len(splits[Splits.seed]) == 4
  assert sorted(ids(Splits.seed) + ids(Splits.image_level)) == [
      '1', '3', '4', '5', '6', '7']
  by_id = {r.source_id: r for r in splits[Splits.source_train]}
  assert by_id['1'].classes.tolist() == [1]  # person, source id 1
  assert by_id['2'].classes.tolist() == [11]  # dog, 11th VOC category
  for r in splits[Splits.image_level]:
    assert r.classes.size == 0 and r.hidden_classes.size > 0
    assert set(r.image_labels.tolist()) == set(r.hidden_classes.tolist())
  target_val = {r.source_id: r for r in splits[Splits.target_val]}
  assert target_val['10'].classes.tolist() == [4]  # oven
  assert target_val['10'].class_texts == ['oven']
  assert stats['train']['crowd_boxes_dropped'] == 1
  assert stats['train']['images_without_boxes'] == 1


def _jpeg(width, height):
  buffer = io.BytesIO()
  Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(
      buffer, format='JPEG')
  return buffer.getvalue()


def test_attach_image_reads_bytes_and_checks_file(tmp_path):
  records, _ = coco17.records_from_coco(
      _coco({5: [('kite', [0, 0, 5, 5], 0)]}))
  with pytest.raises(FileNotFoundError, match='000000000005.jpg'):
    coco17.attach_image(records[0], str(tmp_path))
  data = _jpeg(32, 24)
  (tmp_path / '000000000005.jpg').write_bytes(data)
  assert coco17.attach_image(records[0], str(tmp_path)).image_bytes == data
  (tmp_path / '000000000005.jpg').write_bytes(_jpeg(30, 24))
  with pytest.raises(ValueError, match='30x24 but annotated 32x24'):
    coco17.attach_image(records[0], str(tmp_path))
