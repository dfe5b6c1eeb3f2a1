"""catalog2vec.retrieval"""
