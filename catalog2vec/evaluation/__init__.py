"""catalog2vec.evaluation"""
