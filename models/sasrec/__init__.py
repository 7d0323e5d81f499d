"""SASRec-style self-attentive next-item model over each shopper's ordered recent items.

A candidate source and a ranker feature of the hybrid policy: it reads the order of what a shopper did
last, which the two-tower's averaged history and the co-occurrence sum cannot. Importing this package is
cheap: TensorFlow is only imported (through ``models.tf_runtime``) when a model is fitted, exported or
loaded.
"""
