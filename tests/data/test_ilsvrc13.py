"""ILSVRC 2013 parsing: categories, lists, XML boxes, images, the split."""
import io

import numpy as np
from PIL import Image
import pytest
from scipy import io as scipy_io

from object_detection_note.core.fields import Splits
from object_detection_note.data.formats import ilsvrc13
from object_detection_note.data.records.tf_example_codec import DetectionRecord


def _write(path, text):
  path.write_text(text)
  return str(path)


def _xml(width, height, objects):
  body = ''.join(
      '<object><name>%s</name><bndbox><xmin>%s</xmin><ymin>%s</ymin>'
      '<xmax>%s</xmax><ymax>%s</ymax></bndbox></object>' % o for o in objects)
  return ('<annotation><folder>x</folder><size><width>%d</width>'
          '<height>%d</height><depth>3</depth></size>%s</annotation>' %
          (width, height, body))


def _jpeg(path, width, height, mode='RGB'):
  Image.new(mode, (width, height), 128 if mode != 'CMYK' else (1, 2, 3, 4)
            ).save(str(path), format='JPEG')


# ---------------------------------------------------------------- categories


def test_read_synsets_text_and_csv_and_protocol_order(tmp_path):
  text = _write(tmp_path / 's.txt', '# DET categories\n'
                'n00000004 zebra\n\nn00000003 iPod\n'
                'n00000001 hat with a wide brim\nn00000002 Bear\n')
  csv_path = _write(tmp_path / 's.csv', 'wnid,name\nn00000004,zebra\n'
                    'n00000003,iPod\nn00000001,hat with a wide brim\n'
                    'n00000002,"Bear"\n')
  expected = [ilsvrc13.Synset('n00000004', 'zebra'),
              ilsvrc13.Synset('n00000003', 'iPod'),
              ilsvrc13.Synset('n00000001', 'hat with a wide brim'),
              ilsvrc13.Synset('n00000002', 'Bear')]
  assert ilsvrc13.read_synsets(text) == expected
  assert ilsvrc13.read_synsets(csv_path) == expected
  # Alphabetical by name, case-insensitive (devkit order: ..., iPod, ...).
  source, target = ilsvrc13.split_categories(expected, 2)
  assert [s.name for s in source] == ['Bear', 'hat with a wide brim']
  assert [s.name for s in target] == ['iPod', 'zebra']


def test_read_synsets_errors_name_the_file(tmp_path):
  bad = _write(tmp_path / 'bad.txt', 'n00000001 a\nfoo bar\n')
  with pytest.raises(ValueError, match=r'bad.txt:2'):
    ilsvrc13.read_synsets(bad)
  dup = _write(tmp_path / 'dup.txt', 'n00000001 a\nn00000001 b\n')
  with pytest.raises(ValueError, match=r'dup.txt.*duplicate.*n00000001'):
    ilsvrc13.read_synsets(dup)
  with pytest.raises(ValueError, match='num_source'):
    ilsvrc13.split_categories([ilsvrc13.Synset('n00000001', 'a')], 1)


def test_read_meta_det_mat_keeps_leaves_in_det_id_order(tmp_path):
  fields = ['ILSVRC2013_DET_ID', 'WNID', 'name', 'description',
            'num_children']
  entries = [(2, 'n00000002', 'airplane', 'd', 0),
             (1, 'n00000001', 'accordion', 'd', 0),
             (3, 'n00009999', 'vehicle', 'inner node', 2)]
  synsets = np.zeros((1, len(entries)), dtype=[(f, 'O') for f in fields])
  for i, entry in enumerate(entries):
    synsets[0, i] = tuple(
        np.array([[v]]) if isinstance(v, int) else v for v in entry)
  path = str(tmp_path / 'meta_det.mat')
  scipy_io.savemat(path, {'synsets': synsets})
  assert ilsvrc13.read_synsets(path) == [
      ilsvrc13.Synset('n00000001', 'accordion'),
      ilsvrc13.Synset('n00000002', 'airplane')]


# ---------------------------------------------------------------- lists


def test_read_image_list(tmp_path):
  path = _write(tmp_path / 'val1.txt', 'ILSVRC2013_val_00000002 2\n\n'
                'ILSVRC2013_val_00000001.JPEG 1\nsub/n01_5\n')
  assert ilsvrc13.read_image_list(path) == [
      'ILSVRC2013_val_00000002', 'ILSVRC2013_val_00000001', 'sub/n01_5']
  dup = _write(tmp_path / 'dup.txt', 'a 1\nb 2\na 3\n')
  with pytest.raises(ValueError, match=r'dup.txt:3.*line 1'):
    ilsvrc13.read_image_list(dup)


# ---------------------------------------------------------------- boxes


def test_parse_annotation_xml():
  annotation = ilsvrc13.parse_annotation_xml(
      _xml(40, 30, [('n00000001', 1, 2, 10, 20), ('n00000002', 5, 5, 6, 6)]),
      'a.xml')
  assert (annotation.width, annotation.height) == (40, 30)
  assert annotation.objects[0] == ilsvrc13.PixelBox('n00000001', 1, 2, 10, 20)
  assert len(annotation.objects) == 2
  assert ilsvrc13.parse_annotation_xml(_xml(4, 3, []), 'e.xml').objects == []


@pytest.mark.parametrize('text, message', [
    ('<annotation><size>', 'malformed XML'),
    ('<annotation><object/></annotation>', 'no <size>'),
    ('<annotation><size><width>4</width></size></annotation>', 'no <height>'),
    ('<annotation><size><width>4</width><height>x</height></size>'
     '</annotation>', 'not a number'),
    (_xml(4, 3, [('n1', 1, 1, 'a', 2)]), 'object 0 <xmax> is not a number'),
    ('<annotation><size><width>4</width><height>3</height></size>'
     '<object><name>n1</name></object></annotation>', 'no <bndbox>'),
])
def test_parse_annotation_xml_errors_name_the_file(text, message):
  with pytest.raises(ilsvrc13.InvalidAnnotationError) as error:
    ilsvrc13.parse_annotation_xml(text.encode(), '/data/bad_file.xml')
  assert '/data/bad_file.xml' in str(error.value)
  assert message in str(error.value)


def test_pixel_box_conversion_one_and_zero_based():
  box = ilsvrc13.PixelBox('n', 1, 1, 40, 15)  # Whole width, top half.
  normalized, clipped = ilsvrc13.pixel_box_to_normalized(
      box, 40, 30, pixel_index_base=1, clip_tolerance=1, path='p')
  np.testing.assert_allclose(normalized, [0., 0., 0.5, 1.])
  assert not clipped
  normalized, _ = ilsvrc13.pixel_box_to_normalized(
      ilsvrc13.PixelBox('n', 10, 3, 19, 5), 40, 30, pixel_index_base=0,
      clip_tolerance=0, path='p')
  np.testing.assert_allclose(normalized, [3 / 30, 10 / 40, 6 / 30, 20 / 40])


def test_pixel_box_clipping_and_errors():
  # 0-based box in a 1-based file: one pixel out on the left → clipped.
  normalized, clipped = ilsvrc13.pixel_box_to_normalized(
      ilsvrc13.PixelBox('n', 0, 1, 20, 30), 40, 30, 1, 1., 'p')
  assert clipped
  np.testing.assert_allclose(normalized, [0., 0., 1., 0.5])
  with pytest.raises(ilsvrc13.InvalidAnnotationError,
                     match=r'f.xml.*outside the image by 5') as error:
    ilsvrc13.pixel_box_to_normalized(
        ilsvrc13.PixelBox('n', 1, 1, 45, 30), 40, 30, 1, 1., 'f.xml')
  assert error.value.reason == ilsvrc13.PROBLEM_BOX_OUTSIDE
  with pytest.raises(ilsvrc13.InvalidAnnotationError,
                     match=r'f.xml.*empty') as error:
    ilsvrc13.pixel_box_to_normalized(
        ilsvrc13.PixelBox('n', 9, 1, 5, 30), 40, 30, 1, 1., 'f.xml')
  assert error.value.reason == ilsvrc13.PROBLEM_EMPTY_BOX


# ---------------------------------------------------------------- images


def _tree(tmp_path, objects, size=(40, 30), image_size=None):
  (tmp_path / 'img' / 'n00000002').mkdir(parents=True)
  (tmp_path / 'ann' / 'n00000002').mkdir(parents=True)
  _jpeg(tmp_path / 'img' / 'n00000002' / 'n00000002_7.JPEG',
        *(image_size or size))
  (tmp_path / 'ann' / 'n00000002' / 'n00000002_7.xml').write_text(
      _xml(size[0], size[1], objects))
  return str(tmp_path / 'img'), str(tmp_path / 'ann')


WNIDS = {'n00000001': 1, 'n00000002': 2}
NAMES = {1: 'apple', 2: 'bear'}


def test_parse_image_finds_train_layout_and_converts(tmp_path):
  image_dir, annotation_dir = _tree(
      tmp_path, [('n00000002', 1, 1, 20, 30), ('n00000001', 0, 1, 40, 15)])
  parsed = ilsvrc13.parse_image('n00000002_7', image_dir, annotation_dir,
                                WNIDS, NAMES)
  assert parsed.image_path.endswith('img/n00000002/n00000002_7.JPEG')
  record = parsed.record
  assert (record.source_id, record.height, record.width) == (
      'n00000002_7', 30, 40)
  assert record.image_bytes == b''
  assert record.classes.tolist() == [2, 1]
  assert record.class_texts == ['bear', 'apple']
  np.testing.assert_allclose(record.boxes, [[0, 0, 1, .5], [0, 0, .5, 1]])
  assert parsed.problems == {ilsvrc13.PROBLEM_CLIPPED: 1}
  assert not parsed.reencode


def test_parse_image_errors_and_skip_policy(tmp_path):
  image_dir, annotation_dir = _tree(
      tmp_path, [('n00000009', 1, 1, 5, 5), ('n00000002', 1, 1, 60, 5),
                 ('n00000001', 1, 1, 5, 5)])
  with pytest.raises(ilsvrc13.InvalidAnnotationError,
                     match=r'n00000002_7.xml: unknown WordNet id n00000009'):
    ilsvrc13.parse_image('n00000002_7', image_dir, annotation_dir, WNIDS,
                         NAMES)
  parsed = ilsvrc13.parse_image('n00000002_7', image_dir, annotation_dir,
                                WNIDS, NAMES, skip_invalid=True)
  assert parsed.record.classes.tolist() == [1]
  assert parsed.problems == {ilsvrc13.PROBLEM_UNKNOWN_WNID: 1,
                             ilsvrc13.PROBLEM_BOX_OUTSIDE: 1}
  with pytest.raises(ilsvrc13.InvalidAnnotationError, match='no annotation'):
    ilsvrc13.parse_image('missing', image_dir, annotation_dir, WNIDS, NAMES)
  skipped = ilsvrc13.parse_image('missing', image_dir, annotation_dir, WNIDS,
                                 NAMES, skip_invalid=True)
  assert skipped.record is None
  assert skipped.problems == {ilsvrc13.PROBLEM_BAD_FILE: 1}


def test_parse_image_size_mismatch_names_both_files(tmp_path):
  image_dir, annotation_dir = _tree(tmp_path, [], size=(40, 30),
                                    image_size=(41, 30))
  with pytest.raises(ilsvrc13.InvalidAnnotationError,
                     match=r'n00000002_7.xml: <size> 40x30 differs from the '
                     r'image .*n00000002_7.JPEG \(41x30\)'):
    ilsvrc13.parse_image('n00000002_7', image_dir, annotation_dir, WNIDS,
                         NAMES)


def test_read_image_bytes_keeps_rgb_and_grey_reencodes_cmyk(tmp_path):
  for mode in ('RGB', 'L', 'CMYK'):
    _jpeg(tmp_path / (mode + '.jpg'), 8, 6, mode)
  png = tmp_path / 'png.JPEG'  # A PNG named .JPEG, as in ImageNet.
  Image.new('RGBA', (8, 6)).save(str(png), format='PNG')
  for name in ('RGB', 'L'):
    path = str(tmp_path / (name + '.jpg'))
    assert ilsvrc13.read_image_header(path) == ((8, 6), False)
    data, fmt, width, height, reencoded = ilsvrc13.read_image_bytes(path)
    assert data == open(path, 'rb').read()
    assert (fmt, width, height, reencoded) == ('jpeg', 8, 6, False)
  for path in (str(tmp_path / 'CMYK.jpg'), str(png)):
    assert ilsvrc13.read_image_header(path) == ((8, 6), True)
    data, fmt, width, height, reencoded = ilsvrc13.read_image_bytes(path)
    assert (fmt, width, height, reencoded) == ('jpeg', 8, 6, True)
    with Image.open(io.BytesIO(data)) as image:
      assert (image.format, image.mode, image.size) == ('JPEG', 'RGB', (8, 6))
  (tmp_path / 'broken.jpg').write_bytes(b'not an image')
  with pytest.raises(ilsvrc13.InvalidAnnotationError, match='broken.jpg'):
    ilsvrc13.read_image_header(str(tmp_path / 'broken.jpg'))


# ---------------------------------------------------------------- split


def _record(source_id, classes):
  n = len(classes)
  return DetectionRecord(
      image_bytes=b'', source_id=source_id, height=10, width=10,
      boxes=np.tile([[0.1, 0.1, 0.9, 0.9]], (n, 1)), classes=classes,
      class_texts=[str(c) for c in classes])


def test_assign_splits_membership_and_side_ids():
  # Global ids: 1, 2 source; 3, 4 target.
  val1 = [_record('a', [1, 3]), _record('b', [3]), _record('c', [4]),
          _record('d', [4, 4]), _record('e', [2]), _record('t1', [3])]
  val2 = [_record('v', [2, 4]), _record('w', [1]), _record('x', [])]
  splits = ilsvrc13.assign_splits(val1, val2, [1, 2], [3, 4],
                                  seed_images=(1, 1), seed=3)
  ids = {k: sorted(r.source_id for r in v) for k, v in splits.items()}
  assert ids[Splits.source_train] == ['a', 'e']
  assert ids[Splits.source_val] == ['v', 'w']
  assert ids[Splits.target_val] == ['v']
  assert len(ids[Splits.seed]) == 2  # One per target category.
  assert sorted(ids[Splits.seed] + ids[Splits.image_level]) == [
      'a', 'b', 'c', 'd', 't1']
  assert set(ids[Splits.seed]).isdisjoint(ids[Splits.image_level])
  by_id = {r.source_id: r for r in splits[Splits.source_train]}
  assert by_id['a'].classes.tolist() == [1]
  assert by_id['e'].classes.tolist() == [2]
  assert splits[Splits.target_val][0].classes.tolist() == [2]  # Global 4.
  seed_classes = sorted(int(c) for r in splits[Splits.seed]
                        for c in set(r.classes.tolist()))
  assert set(seed_classes) == {1, 2}
  for record in splits[Splits.image_level]:
    assert record.boxes.shape == (0, 4)
    assert record.hidden_boxes.shape[0] == record.hidden_classes.size > 0
    assert set(record.image_labels.tolist()) <= {1, 2}
  again = ilsvrc13.assign_splits(val1, val2, [1, 2], [3, 4], (1, 1), seed=3)
  assert [r.source_id for r in again[Splits.seed]] == [
      r.source_id for r in splits[Splits.seed]]
