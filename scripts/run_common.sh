# Shared by the four run_*.sh scripts: argument/environment handling and data checks.
# Usage inside a script: pg2_parse_args "$@"; then MODEL_DIR, DATA_DIR, GPU, PYTHON and the
# array EXTRA_FLAGS are set.

set -euo pipefail

PG2_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG2_DATA_URL="homes.esat.kuleuven.be/~liqianma/NIPS17_PG2/data"

pg2_parse_args() {
    # First argument (if it is not a --flag): the model directory. The rest: extra flags for
    # pg2_tf.main, which override the script's (absl keeps the last value of a repeated flag).
    MODEL_DIR="${MODEL_DIR:-}"
    if [[ $# -gt 0 && "$1" != --* ]]; then
        MODEL_DIR="$1"
        shift
    fi
    if [[ -z "$MODEL_DIR" ]]; then
        echo "usage: $(basename "$0") MODEL_DIR [--flag=value ...]   (or set MODEL_DIR)" >&2
        exit 2
    fi
    DATA_DIR="${DATA_DIR:-$PG2_ROOT/data}"
    GPU="${GPU:-0}"
    PYTHON="${PYTHON:-python}"
    EXTRA_FLAGS=("$@")
}

pg2_original_folder() {
    # The folder that the original release's DATASET.zip holds, before renaming it DATASET.
    case "$1" in
        Market_train_data) echo data4tf_GAN_attr_pose_onlyPosPair_128x64PoseRCV_Mask_sparse_Attr_partBbox7_maskR4R6 ;;
        Market_test_data) echo data4tf_GAN_attr_pose_onlyPosPair_128x64PoseRCV_Mask_test_sparse_Attr_partBbox7_maskR4R6 ;;
        DF_train_data) echo data4tf_GAN_attr_pose_onlyPosPair_256x256PoseRCV_Mask_sparse_partBbox37_maskR4R8_roi10Complete ;;
        DF_test_data) echo data4tf_GAN_attr_pose_onlyPosPair_256x256PoseRCV_Mask_test_sparse_partBbox37_maskR4R8_roi10Complete ;;
    esac
}

pg2_require_data() {
    # pg2_require_data DATASET: stops with what to download when DATA_DIR/DATASET is missing.
    local dataset="$1" zip_name="$1.zip" original_name
    original_name="$(pg2_original_folder "$1")"
    if [[ -d "$DATA_DIR/$dataset" ]]; then
        return 0
    fi
    cat >&2 <<MSG
error: $DATA_DIR/$dataset does not exist (nothing is downloaded by this script).
  Get the original PG2 records: download $PG2_DATA_URL/$zip_name,
  unzip it into $DATA_DIR and rename $original_name to $dataset;
  (that server no longer answers:) build them from the dataset's official release with
  python -m data_prep.from_release (docs/data.md, "Getting the data now that the original links are gone");
  or point DATA_DIR=/path/to/parent/of/$dataset at an existing copy.
MSG
    exit 1
}

pg2_pretrained_path() {
    # The checkpoint to test: $PRETRAINED_PATH (e.g. a released TF1 model), else
    # MODEL_DIR/model.ckpt-$START_STEP, else the latest checkpoint in MODEL_DIR.
    if [[ -n "${PRETRAINED_PATH:-}" ]]; then
        echo "$PRETRAINED_PATH"
    elif [[ -n "${START_STEP:-}" ]]; then
        echo "$MODEL_DIR/model.ckpt-$START_STEP"
    else
        echo "$MODEL_DIR"
    fi
}

pg2_main() {
    # pg2_main --flag=value ...: runs pg2_tf.main with the script's flags, then the flags every
    # original script passed (DCGAN D, z_num 64, the GPU, the model and data folders), then the
    # extra flags of the command line (which override them).
    "$PYTHON" -m pg2_tf.main "$@" \
        --D_arch=DCGAN \
        --z_num=64 \
        --gpu="$GPU" \
        --data_dir="$DATA_DIR" \
        --model_dir="$MODEL_DIR" \
        "${EXTRA_FLAGS[@]}"
}
