import pytest

from steps.lib.secrets import mask_url


@pytest.mark.parametrize(
    "raw, masked",
    [
        ("postgresql://user:pw@host:5432/db", "postgresql://user:***@host:5432/db"),
        ("postgresql+psycopg://tabtune:s3cret-pw@127.0.0.1:5/mlflow", "postgresql+psycopg://tabtune:***@127.0.0.1:5/mlflow"),
        ("https://x-access-token:ghp_abc@github.com/o/r.git", "https://x-access-token:***@github.com/o/r.git"),
        ("https://ghp_abc@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
        ("https://acct.blob.core.windows.net/c/f.csv?sv=1&sig=abc%2F", "https://acct.blob.core.windows.net/c/f.csv?sv=1&sig=***"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("run a then postgresql://u:p@h/d and http://u:q@h2", "run a then postgresql://u:***@h/d and http://u:***@h2"),
        ("diabetes", "diabetes"),
    ],
)
def test_mask_url(raw, masked):
    assert mask_url(raw) == masked
    assert mask_url(mask_url(raw)) == masked
