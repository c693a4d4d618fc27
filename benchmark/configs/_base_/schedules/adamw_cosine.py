# AdamW with weight decay 0.05 and cosine decay after a linear warm-up (paper 4.3).
# `lr` is set by each profile; the paper scales it as 1e-3 x batch / 512.
target_schedule = dict(max_epochs=30, batch_size=32, lr=1e-3 * 32 / 512, weight_decay=0.05,
                       warmup_epochs=2, num_workers=4, checkpoint_interval=1)
