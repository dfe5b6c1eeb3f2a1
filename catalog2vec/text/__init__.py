"""catalog2vec.text"""
