"""Tiny on-disk inputs of the COCO 2017, ILSVRC 2013 and Open Images converters.

Used by the converter tests (``test_create_*``) and by the stall bench, which
runs each converter binary on these same inputs idle and beside busy loops.
Each ``write_*(root)`` writes the inputs under ``root`` and returns a dict of
their paths (``'out'``: where the converter should write); each ``*_args``
gives the converter flags (``--name=value`` strings, no program name) that
the tests run it with.
"""
import json
import os

from PIL import Image

from object_detection_note.data.formats import coco17

# ---------------------------------------------------------------- COCO 2017
COCO_W, COCO_H = 32, 24
VOC_IDS = dict(zip(coco17.VOC_CATEGORY_NAMES,
                   (1, 2, 3, 4, 5, 6, 7, 9, 16, 17, 18, 19, 20, 21, 44, 62, 63,
                    64, 67, 72)))
OTHER = {'zebra': 24, 'giraffe': 25, 'kite': 38, 'oven': 79}
ALL_IDS = {**VOC_IDS, **OTHER}
# image id → [(category, [x, y, w, h], iscrowd)]
COCO_TRAIN = {
    1: [('person', [0, 0, 16, 12], 0), ('zebra', [4, 6, 8, 10], 0),
        ('person', [0, 0, 32, 24], 1)],
    2: [('dog', [2, 2, 10, 10], 0)],
    3: [('zebra', [0, 0, 5, 5], 0), ('zebra', [10, 10, 5, 5], 0)],
    4: [('giraffe', [0, 0, 5, 5], 0), ('kite', [1, 1, 5, 5], 0)],
    5: [('kite', [28, 20, 8, 8], 0)],  # clipped to the image
    6: [('oven', [0, 0, 5, 5], 0)],
    7: [('oven', [2, 2, 5, 5], 0), ('zebra', [3, 3, 5, 5], 0)],
    8: [('giraffe', [6, 6, 5, 5], 0)],
    9: [],
}
COCO_VAL = {
    10: [('car', [0, 0, 4, 4], 0), ('oven', [8, 4, 16, 8], 0)],
    11: [('giraffe', [0, 0, 4, 4], 0)],
    12: [('cat', [1, 1, 4, 4], 0)],
}


def write_coco_json(path, image_dir, images):
  """One COCO instances file and its JPEGs for ``images`` (see COCO_TRAIN)."""
  os.makedirs(image_dir, exist_ok=True)
  coco = {'categories': [{'id': i, 'name': n} for n, i in ALL_IDS.items()],
          'images': [], 'annotations': []}
  for image_id, anns in images.items():
    name = '%012d.jpg' % image_id
    Image.new('RGB', (COCO_W, COCO_H), (image_id * 10, 50, 90)).save(
        os.path.join(image_dir, name), format='JPEG')
    coco['images'].append({'id': image_id, 'file_name': name,
                           'height': COCO_H, 'width': COCO_W})
    for category, bbox, crowd in anns:
      coco['annotations'].append({
          'id': 100 * image_id + len(coco['annotations']),
          'image_id': image_id, 'category_id': ALL_IDS[category],
          'bbox': bbox, 'iscrowd': crowd, 'area': bbox[2] * bbox[3]})
  with open(path, 'w') as f:
    json.dump(coco, f)


def write_coco(root):
  """Train and val instances files and image dirs under ``root``."""
  paths = dict(train_json=os.path.join(root, 'instances_train2017.json'),
               val_json=os.path.join(root, 'instances_val2017.json'),
               train_dir=os.path.join(root, 'train2017'),
               val_dir=os.path.join(root, 'val2017'),
               out=os.path.join(root, 'out'))
  write_coco_json(paths['train_json'], paths['train_dir'], COCO_TRAIN)
  write_coco_json(paths['val_json'], paths['val_dir'], COCO_VAL)
  return paths


def coco_args(paths):
  return ['--train_annotations_file=' + paths['train_json'],
          '--val_annotations_file=' + paths['val_json'],
          '--train_image_dir=' + paths['train_dir'],
          '--val_image_dir=' + paths['val_dir'],
          '--output_dir=' + paths['out'], '--seed_images_per_category=1',
          '--seed=3', '--num_shards=2', '--runner=FnApiRunner']


# ------------------------------------------------------------- ILSVRC 2013
ILSVRC_W, ILSVRC_H = 20, 16
APPLE, BEAR, IPOD, ZEBRA = 'n00000001', 'n00000002', 'n00000003', 'n00000004'
FULL = (1, 1, ILSVRC_W, ILSVRC_H)  # 1-based inclusive: the whole image.
LEFT = (1, 1, ILSVRC_W // 2, ILSVRC_H)  # Left half.
VAL1 = {'v1': [(APPLE,) + LEFT, (IPOD,) + FULL], 'v2': [(IPOD,) + FULL],
        'v3': [(ZEBRA,) + LEFT], 'v4': [(ZEBRA,) + LEFT, (ZEBRA,) + FULL],
        'v5': [(BEAR,) + FULL], 'v6': []}
VAL2 = {'v7': [(BEAR,) + FULL, (ZEBRA,) + LEFT], 'v8': [(APPLE,) + FULL]}
ILSVRC_TRAIN = {IPOD + '_1': [(IPOD,) + LEFT], ZEBRA + '_2': [(ZEBRA,) + FULL]}
CMYK = 'v5'  # Stored as a CMYK JPEG: re-encoded as RGB.


def annotation_xml(objects):
  """An ILSVRC annotation XML of ``objects`` [(synset, x1, y1, x2, y2)]."""
  body = ''.join(
      '<object><name>%s</name><bndbox><xmin>%d</xmin><ymin>%d</ymin>'
      '<xmax>%d</xmax><ymax>%d</ymax></bndbox></object>' % o for o in objects)
  return ('<annotation><size><width>%d</width><height>%d</height></size>%s'
          '</annotation>' % (ILSVRC_W, ILSVRC_H, body))


def _add_ilsvrc_image(image_dir, annotation_dir, relative, objects, value):
  for directory in (image_dir, annotation_dir):
    os.makedirs(os.path.dirname(os.path.join(directory, relative)),
                exist_ok=True)
  mode, color = ('CMYK', (value, 0, 0, 0)) if relative == CMYK else (
      'RGB', (value, 0, 0))
  Image.new(mode, (ILSVRC_W, ILSVRC_H), color).save(
      os.path.join(image_dir, relative + '.JPEG'), format='JPEG')
  with open(os.path.join(annotation_dir, relative + '.xml'), 'w') as f:
    f.write(annotation_xml(objects))


def write_ilsvrc(root):
  """A devkit-like layout: data/meta lists, val and train image/XML dirs."""
  paths = {k: os.path.join(root, k) for k in ('val_img', 'val_ann',
                                               'train_img', 'train_ann')}
  devkit_data = os.path.join(root, 'devkit', 'data', 'det_lists')
  os.makedirs(devkit_data)
  synsets = os.path.join(root, 'synsets.txt')
  with open(synsets, 'w') as f:  # Not in alphabetical order.
    f.write('%s zebra\n%s iPod\n%s apple\n%s Bear\n' %
            (ZEBRA, IPOD, APPLE, BEAR))
  for i, (name, objects) in enumerate(sorted({**VAL1, **VAL2}.items())):
    _add_ilsvrc_image(paths['val_img'], paths['val_ann'], name, objects,
                      10 * i)
  for i, (name, objects) in enumerate(sorted(ILSVRC_TRAIN.items())):
    _add_ilsvrc_image(paths['train_img'], paths['train_ann'],
                      name.split('_')[0] + '/' + name, objects, 200 + i)
  for split, names in (('val1', VAL1), ('val2', VAL2)):
    with open(os.path.join(devkit_data, split + '.txt'), 'w') as f:
      f.writelines('%s %d\n' % (n, i + 1) for i, n in enumerate(sorted(names)))
  paths['train_list'] = os.path.join(root, 'train_augment.txt')
  with open(paths['train_list'], 'w') as f:
    f.write('\n'.join(sorted(ILSVRC_TRAIN)) + '\n')
  paths.update(synsets=synsets, devkit=os.path.join(root, 'devkit'),
               val1=os.path.join(devkit_data, 'val1.txt'),
               val2=os.path.join(devkit_data, 'val2.txt'),
               out=os.path.join(root, 'out'))
  return paths


def ilsvrc_args(paths):
  return ['--devkit_dir=' + paths['devkit'],
          '--synsets_file=' + paths['synsets'],
          '--val_image_dir=' + paths['val_img'],
          '--val_annotation_dir=' + paths['val_ann'],
          '--train_image_dir=' + paths['train_img'],
          '--train_annotation_dir=' + paths['train_ann'],
          '--train_augment_list=' + paths['train_list'],
          '--output_dir=' + paths['out'], '--num_source_categories=2',
          '--seed_images_min=1', '--seed_images_max=1', '--num_shards=2',
          '--seed=5', '--runner=FnApiRunner']


# ------------------------------------------------------------- Open Images
DESCRIPTIONS = ('/m/cat,Cat\n/m/dog,Dog\n/m/mouse,Mouse\n'
                '/m/cmouse,Computer mouse\n/m/moto,Motorcycle\n'
                '/m/tv,Television\n/m/tree,Tree\n/m/veh,"Vehicle, land"\n')
LABELS = [
    ('img1', '/m/cat', 1), ('img1', '/m/tree', 1), ('img1', '/m/dog', 0),
    ('img2', '/m/tree', 1), ('img2', '/m/veh', 1),  # No match: dropped.
    ('img3', '/m/dog', 0),  # No positive label: dropped.
    ('img4', '/m/mouse', 1),  # The animal, excluded by the name map.
    ('img5', '/m/cmouse', 1), ('img5', '/m/moto', 1), ('img5', '/m/cat', 1),
    ('img6', '/m/tv', 1), ('img6', '/m/tree', 1),
]
TARGET_MAP = ''.join(
    'item {\n  name: "%s"\n  id: %d\n%s}\n' %
    (name, i, '  display_name: "%s"\n' % display if display else '')
    for i, (name, display) in enumerate(
        [('cat', ''), ('mouse', ''), ('motorcycle', ''), ('tv', 'Television'),
         ('zebra', '')], start=1))


def write_openimages(root):
  """Labels, class descriptions, a class-name map, a target label map and
  six JPEGs under ``root``."""
  paths = {k: os.path.join(root, v) for k, v in (
      ('labels', 'labels.csv'), ('classes', 'class-descriptions.csv'),
      ('name_map', 'names.csv'), ('label_map', 'coco.pbtxt'),
      ('images', 'train'), ('out', 'out'))}
  with open(paths['labels'], 'w') as f:
    f.write('ImageID,Source,LabelName,Confidence\n')
    f.writelines('%s,verification,%s,%d\n' % row for row in LABELS)
  with open(paths['classes'], 'w') as f:
    f.write(DESCRIPTIONS)
  with open(paths['name_map'], 'w') as f:
    f.write('openimages_class,target_class\nMouse,\n/m/cmouse,mouse\n')
  with open(paths['label_map'], 'w') as f:
    f.write(TARGET_MAP)
  os.makedirs(paths['images'])
  for i in range(1, 7):
    Image.new('RGB', (10 + i, 8), (i, 0, 0)).save(
        os.path.join(paths['images'], 'img%d.jpg' % i), format='JPEG')
  return paths


def openimages_args(paths):
  return ['--image_labels_csv=' + paths['labels'],
          '--class_descriptions_csv=' + paths['classes'],
          '--image_dir=' + paths['images'],
          '--target_label_map=' + paths['label_map'],
          '--class_name_map=' + paths['name_map'],
          '--output_dir=' + paths['out'], '--num_shards=2',
          '--runner=FnApiRunner']


# name → (pipelines/ script, write_*, *_args)
CONVERTERS = {
    'coco17': ('create_coco17_tfrecords.py', write_coco, coco_args),
    'ilsvrc13': ('create_ilsvrc13_tfrecords.py', write_ilsvrc, ilsvrc_args),
    'openimages': ('create_openimages_tfrecords.py', write_openimages,
                   openimages_args),
}
