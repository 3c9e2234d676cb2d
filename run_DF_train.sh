#!/usr/bin/env bash
# Train PG2 on DeepFashion (both stages), as the original run_DF_train.sh.
#   ./run_DF_train.sh MODEL_DIR [--flag=value ...]
# Environment: DATA_DIR (default ./data, holding DF_train_data), GPU (default 0), PYTHON.
# Re-running with the same MODEL_DIR resumes from its latest checkpoint.
source "$(dirname "${BASH_SOURCE[0]}")/scripts/run_common.sh"
pg2_parse_args "$@"
pg2_require_data DF_train_data DF_train_data.zip \
    data4tf_GAN_attr_pose_onlyPosPair_256x256PoseRCV_Mask_sparse_partBbox37_maskR4R8_roi10Complete

"$PYTHON" -m pg2_tf.main --dataset=DF_train_data --data_dir="$DATA_DIR" \
    --img_H=256 --img_W=256 \
    --batch_size=1 --max_step=80000 \
    --d_lr=0.00002 --g_lr=0.00002 \
    --lr_update_step=50000 \
    --is_train=True \
    --model=11 \
    --D_arch=DCGAN \
    --gpu="$GPU" \
    --z_num=64 \
    --model_dir="$MODEL_DIR" \
    "${EXTRA_FLAGS[@]}"
