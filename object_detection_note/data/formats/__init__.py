"""Dataset formats: one module per source dataset (COCO 2017, ILSVRC 2013, Open Images, synthetic scenes) turned into NOTE-RCNN splits; used by the converters in pipelines/."""
