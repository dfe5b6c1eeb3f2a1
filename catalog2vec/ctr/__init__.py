"""catalog2vec.ctr"""
