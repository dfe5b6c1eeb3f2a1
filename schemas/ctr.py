"""CTR (He et al. 2014): model-ready impression features, test-window predictions and metrics."""

from catalog2vec.lakehouse.table import Column as C
from catalog2vec.lakehouse.table import TableSpec
from catalog2vec.schemas import properties

CTR_FEATURES = TableSpec(
    layer="gold",
    properties=properties.GOLD,
    name="ctr_features",
    doc=(
        "One row per impression and feature version: categorical fields (impression context + item_id) "
        "and numeric fields (tag:<word> = predicted tag probability, emb_pca_<i> = embedding PCA "
        "component fitted on the train window), with a time-ordered train/validation/test split."
    ),
    key=("feature_version", "impression_id"),
    version_column="feature_version",
    partition_by=("feature_version",),
    columns=(
        C("feature_version", "string", False, "model_version of the item features, or 'raw-<source>'"),
        C("impression_id", "string", False),
        C("ts", "timestamp", False),
        C("split", "string", False, "train | validation | test (time-ordered)"),
        C("click", "int", False),
        C("item_id", "string", True),
        C("source", "string", False, "impression log; 'synthetic' for the simulator"),
        C("categorical", "map<string,string>", False, "categorical features by name"),
        C("numeric", "map<string,double>", False, "numeric features by name (tag:*, emb_pca_*)"),
        C("run_id", "string", False),
    ),
)

CTR_PREDICTIONS = TableSpec(
    layer="gold",
    properties=properties.GOLD,
    name="ctr_predictions",
    doc="Test-window click probabilities of every model of one CTR training run (after re-calibration).",
    key=("ctr_version", "model", "impression_id"),
    version_column="ctr_version",
    partition_by=("ctr_version",),
    columns=(
        C("ctr_version", "string", False),
        C("model", "string", False, "trees_lr | lr_only | trees_only | trees_lr_no_visual"),
        C("impression_id", "string", False),
        C("ts", "timestamp", False),
        C("click", "int", False),
        C("p", "double", False, "predicted click probability (re-calibrated for down-sampling)"),
        C("run_id", "string", False),
    ),
)

CTR_METRICS = TableSpec(
    layer="gold",
    properties=properties.GOLD,
    name="ctr_metrics",
    doc="Paper-style metrics per model and split: NE, calibration, AUC, log loss, NE relative to trees only.",
    key=("ctr_version", "model", "split"),
    version_column="ctr_version",
    partition_by=("ctr_version",),
    columns=(
        C("ctr_version", "string", False),
        C("model", "string", False),
        C("split", "string", False),
        C("rows", "long", False),
        C("clicks", "long", False),
        C("ctr", "double", False),
        C("log_loss", "double", False),
        C("ne", "double", False, "normalized entropy: log loss / entropy of the window's CTR"),
        C("calibration", "double", False, "mean predicted CTR / observed CTR"),
        C("auc", "double", True),
        C("ne_relative_to_trees", "double", True, "NE / NE(trees_only) (paper Table 1)"),
        C("run_id", "string", False),
    ),
)
