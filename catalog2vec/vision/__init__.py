"""catalog2vec.vision"""
