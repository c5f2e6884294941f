"""OpenImages v4: class lists, class matching, label rows, image records."""
import io

from PIL import Image
import pytest

from object_detection_note.data.formats import ilsvrc13
from object_detection_note.data.formats import openimages

TARGETS = [openimages.TargetCategory(1, 'cat'),
           openimages.TargetCategory(2, 'mouse'),
           openimages.TargetCategory(3, 'tv', 'Television'),
           openimages.TargetCategory(4, 'zebra')]
DESCRIPTIONS = {'/m/cat': 'Cat', '/m/mouse': 'Mouse',
                '/m/cmouse': 'Computer mouse', '/m/tv': 'television',
                '/m/tree': 'Tree', '/m/kitty': 'Kitty'}


def _write(path, text):
  path.write_text(text)
  return str(path)


def test_read_class_descriptions(tmp_path):
  path = _write(tmp_path / 'c.csv', '/m/01,Cat\n\n/m/02,"Car, automobile"\n')
  assert openimages.read_class_descriptions(path) == {
      '/m/01': 'Cat', '/m/02': 'Car, automobile'}
  header = _write(tmp_path / 'h.csv', 'LabelName,DisplayName\n/m/01,Cat\n')
  assert openimages.read_class_descriptions(header) == {'/m/01': 'Cat'}
  bad = _write(tmp_path / 'bad.csv', '/m/01,Cat\n/m/02\n')
  with pytest.raises(ValueError, match=r'bad.csv:2'):
    openimages.read_class_descriptions(bad)
  dup = _write(tmp_path / 'dup.csv', '/m/01,Cat\n/m/01,Kitty\n')
  with pytest.raises(ValueError, match=r'dup.csv:2: class /m/01'):
    openimages.read_class_descriptions(dup)


def test_read_class_name_map(tmp_path):
  path = _write(tmp_path / 'map.csv', 'openimages_class,target_class\n'
                'Mouse,\n/m/cmouse,Mouse\nKITTY,Cat\n')
  assert openimages.read_class_name_map(path) == {
      'mouse': '', '/m/cmouse': 'mouse', 'kitty': 'cat'}
  dup = _write(tmp_path / 'dup.csv', 'kitty,cat\nKitty,dog\n')
  with pytest.raises(ValueError, match=r'dup.csv:2.*mapped twice'):
    openimages.read_class_name_map(dup)
  bad = _write(tmp_path / 'bad.csv', 'a,b,c\n')
  with pytest.raises(ValueError, match=r'bad.csv:1'):
    openimages.read_class_name_map(bad)


def test_match_classes_automatic_and_explicit():
  automatic = openimages.match_classes(DESCRIPTIONS, TARGETS)
  # Display names match names or display names, case-insensitively; the
  # animal "Mouse" wrongly matches COCO's computer mouse without a map.
  assert automatic.mid_to_target == {'/m/cat': 1, '/m/mouse': 2, '/m/tv': 3}
  assert automatic.unmatched_targets == ['zebra']
  explicit = openimages.match_classes(
      DESCRIPTIONS, TARGETS,
      {'mouse': '', '/m/cmouse': 'mouse', 'kitty': 'cat'})
  assert explicit.mid_to_target == {'/m/cat': 1, '/m/kitty': 1,
                                    '/m/cmouse': 2, '/m/tv': 3}
  assert explicit.target_sources == {'cat': ['Cat', 'Kitty'],
                                     'mouse': ['Computer mouse'],
                                     'tv': ['television']}
  with pytest.raises(ValueError, match=r'map.csv maps .kitty. to .dog.'):
    openimages.match_classes(DESCRIPTIONS, TARGETS, {'kitty': 'dog'},
                             'map.csv')


def test_label_columns_and_rows():
  columns = openimages.label_columns(
      '\ufeffSource,Confidence,ImageID,LabelName', 'l.csv')
  assert columns == (2, 3, 1)
  assert openimages.parse_label_line('verification,1,img1,/m/cat', columns,
                                     'l.csv') == ('img1', '/m/cat', True)
  assert openimages.parse_label_line('verification,0,img1,/m/dog', columns,
                                     'l.csv') == ('img1', '/m/dog', False)
  assert openimages.parse_label_line('machine,0.8,img1,/m/dog', columns,
                                     'l.csv')[2] is False
  assert openimages.parse_label_line('  ', columns, 'l.csv') is None
  with pytest.raises(ValueError, match=r'l.csv: malformed label row'):
    openimages.parse_label_line('verification,1,img1', columns, 'l.csv')
  with pytest.raises(ValueError, match=r'l.csv: malformed label row'):
    openimages.parse_label_line('verification,yes,img1,/m/x', columns, 'l.csv')
  with pytest.raises(ValueError, match=r'l.csv: header .* lacks columns '
                     r"\['Confidence'\]"):
    openimages.label_columns('ImageID,Source,LabelName', 'l.csv')


def test_summarize_image_counts():
  mid_to_target = {'/m/cat': 1, '/m/kitty': 1, '/m/tv': 3}
  ids, counts, unmatched = openimages.summarize_image(
      [('/m/tv', True), ('/m/cat', True), ('/m/kitty', True),
       ('/m/tree', True), ('/m/dog', False), ('/m/cat', True)],
      mid_to_target)
  assert ids == [1, 3]
  assert unmatched == {'/m/tree': 1}
  assert counts == {
      openimages.IMAGES_IN_CSV: 1,
      openimages.IMAGES_WITHOUT_POSITIVE_LABEL: 0,
      openimages.IMAGES_WITHOUT_MATCHED_LABEL: 0,
      openimages.IMAGES_WITH_MATCHED_LABEL: 1,
      openimages.POSITIVE_LABELS: 4, openimages.NEGATIVE_LABELS: 1,
      openimages.MATCHED_LABELS: 3, openimages.UNMATCHED_LABELS: 1}
  ids, counts, _ = openimages.summarize_image([('/m/tree', True)],
                                              mid_to_target)
  assert ids == [] and counts[openimages.IMAGES_WITHOUT_MATCHED_LABEL] == 1
  ids, counts, _ = openimages.summarize_image([('/m/cat', False)],
                                              mid_to_target)
  assert ids == [] and counts[openimages.IMAGES_WITHOUT_POSITIVE_LABEL] == 1
  assert counts[openimages.IMAGES_WITHOUT_MATCHED_LABEL] == 0


def test_image_record(tmp_path):
  Image.new('RGB', (12, 7), (9, 9, 9)).save(str(tmp_path / 'abc.jpg'),
                                            format='JPEG')
  record = openimages.image_record('abc', [1, 3], {1: 'cat', 3: 'tv'},
                                   str(tmp_path))
  assert (record.source_id, record.filename) == ('abc', 'abc.jpg')
  assert (record.height, record.width, record.image_format) == (7, 12, 'jpeg')
  assert record.image_bytes == (tmp_path / 'abc.jpg').read_bytes()
  assert record.image_labels.tolist() == [1, 3]
  assert record.image_label_texts == ['cat', 'tv']
  assert record.boxes.shape == (0, 4) and record.hidden_boxes.shape == (0, 4)
  with Image.open(io.BytesIO(record.image_bytes)) as image:
    assert image.size == (12, 7)
  with pytest.raises(ilsvrc13.InvalidAnnotationError,
                     match=r'image missing not found: .*missing.jpg'):
    openimages.image_record('missing', [1], {1: 'cat'}, str(tmp_path))


def test_image_record_decodes_the_image(tmp_path):
  """A JPEG whose header reads but whose data is cut short is named, not
  written (the ILSVRC converter's decode check, ilsvrc13.read_image_bytes)."""
  buffer = io.BytesIO()
  noise = Image.effect_noise((64, 48), 60).convert('RGB')
  noise.save(buffer, format='JPEG', quality=95)
  path = tmp_path / 'cut.jpg'
  path.write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])
  with Image.open(str(path)) as image:  # the header alone looks fine
    assert image.size == (64, 48)
  with pytest.raises(ilsvrc13.InvalidAnnotationError,
                     match=r'cut\.jpg: unreadable image: .*truncated'):
    openimages.image_record('cut', [1], {1: 'cat'}, str(tmp_path))
