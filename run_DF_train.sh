#!/usr/bin/env bash
# Train PG2 on DeepFashion (both stages), as the original run_DF_train.sh.
#   ./run_DF_train.sh MODEL_DIR [--flag=value ...]
# Environment: DATA_DIR (default ./data, holding DF_train_data), GPU (default 0), PYTHON.
# Re-running with the same MODEL_DIR resumes from its latest checkpoint.
source "$(dirname "${BASH_SOURCE[0]}")/scripts/run_common.sh"
pg2_parse_args "$@"
pg2_require_data DF_train_data

pg2_main --dataset=DF_train_data --model=11 --img_H=256 --img_W=256 --is_train=True \
    --batch_size=1 --max_step=80000 --d_lr=0.00002 --g_lr=0.00002 --lr_update_step=50000
