"""catalog2vec.similarity"""
