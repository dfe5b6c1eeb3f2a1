"""catalog2vec.clustering"""
