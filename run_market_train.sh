#!/usr/bin/env bash
# Train PG2 on Market-1501 (both stages), as the original run_market_train.sh.
#   ./run_market_train.sh MODEL_DIR [--flag=value ...]
# Environment: DATA_DIR (default ./data, holding Market_train_data), GPU (default 0), PYTHON.
# Re-running with the same MODEL_DIR resumes from its latest checkpoint.
source "$(dirname "${BASH_SOURCE[0]}")/scripts/run_common.sh"
pg2_parse_args "$@"
pg2_require_data Market_train_data

pg2_main --dataset=Market_train_data --model=1 --img_H=128 --img_W=64 --is_train=True \
    --batch_size=16 --max_step=60000 --d_lr=0.00002 --g_lr=0.00002 --lr_update_step=50000
