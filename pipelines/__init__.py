"""Ray jobs that normalise radiology source datasets into WebDataset shards.

Data flows one way: source (rows -> records) -> task (record -> question/answer/image
positions) -> preprocess (imaging) -> encode (text + arrays) -> write (tar shards).
"""
