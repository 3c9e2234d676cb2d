#!/usr/bin/env bash
# Train PG2 on Market-1501 (both stages), as the original run_market_train.sh.
#   ./run_market_train.sh MODEL_DIR [--flag=value ...]
# Environment: DATA_DIR (default ./data, holding Market_train_data), GPU (default 0), PYTHON.
# Re-running with the same MODEL_DIR resumes from its latest checkpoint.
source "$(dirname "${BASH_SOURCE[0]}")/scripts/run_common.sh"
pg2_parse_args "$@"
pg2_require_data Market_train_data Market_train_data.zip \
    data4tf_GAN_attr_pose_onlyPosPair_128x64PoseRCV_Mask_sparse_Attr_partBbox7_maskR4R6

"$PYTHON" -m pg2_tf.main --dataset=Market_train_data --data_dir="$DATA_DIR" \
    --img_H=128 --img_W=64 \
    --batch_size=16 --max_step=60000 \
    --d_lr=0.00002 --g_lr=0.00002 \
    --lr_update_step=50000 \
    --is_train=True \
    --model=1 \
    --D_arch=DCGAN \
    --gpu="$GPU" \
    --z_num=64 \
    --model_dir="$MODEL_DIR" \
    "${EXTRA_FLAGS[@]}"
