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
pg2_require_data Market_test_data

pg2_main --dataset=Market_test_data --model=1 --img_H=128 --img_W=64 --is_train=False \
    --batch_size=32 --pretrained_path="$(pg2_pretrained_path)" --score=True
