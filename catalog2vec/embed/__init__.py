"""catalog2vec.embed"""
