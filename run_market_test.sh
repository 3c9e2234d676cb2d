#!/usr/bin/env bash
# Test PG2 on Market-1501 and score the results, as the original run_market_test.sh.
#   ./run_market_test.sh MODEL_DIR [--flag=value ...]
# Environment: DATA_DIR (default ./data, holding Market_test_data), GPU (default 0), PYTHON;
#   PRETRAINED_PATH (a checkpoint prefix, e.g. a released original TF1 model) or START_STEP
#   (tests MODEL_DIR/model.ckpt-START_STEP); default: the latest checkpoint in MODEL_DIR;
#   PG2_INCEPTION_GRAPH (inception-2015-12-05.tgz) for IS and FID.
# Writes MODEL_DIR/test_result/{x,x_target,G,pose,pose_target,mask,mask_target,G1,DiffMap}/
# and MODEL_DIR/test_result/score_rgb.txt, score_mask.txt (the pg2 protocol, as the original) and
# score_patn.json (Pose-Transfer's protocol, docs/scores.md).
source "$(dirname "${BASH_SOURCE[0]}")/scripts/run_common.sh"
pg2_parse_args "$@"
pg2_require_data Market_test_data Market_test_data.zip \
    data4tf_GAN_attr_pose_onlyPosPair_128x64PoseRCV_Mask_test_sparse_Attr_partBbox7_maskR4R6

"$PYTHON" -m pg2_tf.main --dataset=Market_test_data --data_dir="$DATA_DIR" \
    --img_H=128 --img_W=64 \
    --batch_size=32 \
    --is_train=False \
    --model=1 \
    --D_arch=DCGAN \
    --gpu="$GPU" \
    --z_num=64 \
    --model_dir="$MODEL_DIR" \
    --pretrained_path="$(pg2_pretrained_path)" \
    --score=True \
    "${EXTRA_FLAGS[@]}"
