"""Sets up and reads back the azure_blob destination's local peer, Azurite, with Microsoft's
`azure-storage-blob` client (PyPI), not with our own code. The first argument is Azurite's blob
port on 127.0.0.1; the account is Azurite's well-known development account and key.

    peer_azure.py PORT create-container NAME   creates container NAME; prints {"container": NAME}
    peer_azure.py PORT sas CONTAINER           a container SAS (create and write, 1 hour) signed
                                               by the SDK with the account key; prints
                                               {"sas_token"} (without a leading ?)
    peer_azure.py PORT read-blobs CONTAINER PREFIX
                                               every blob under PREFIX, downloaded, gunzipped
                                               when its name ends in .gz (which must then be
                                               gzip), its NDJSON lines parsed; prints [{"name",
                                               "records", "blob_type", "content_type",
                                               "content_encoding", "metadata", "content_md5"
                                               (as Azure keeps it, base64), "stored_md5" (of the
                                               stored bytes, base64)}] in name order
"""
import base64
import datetime
import gzip
import hashlib
import json
import sys

from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# The newest version Azurite 3.37 knows; the SDK's default is newer still.
API_VERSION = "2025-11-05"

port, command = sys.argv[1], sys.argv[2]
service = BlobServiceClient(
    account_url=f"http://127.0.0.1:{port}/{ACCOUNT}",
    credential={"account_name": ACCOUNT, "account_key": KEY},
    api_version=API_VERSION,
)

if command == "create-container":
    name = sys.argv[3]
    service.create_container(name)
    print(json.dumps({"container": name}))
elif command == "sas":
    container = sys.argv[3]
    token = generate_container_sas(
        ACCOUNT,
        container,
        account_key=KEY,
        permission=ContainerSasPermissions(create=True, write=True),
        expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1),
    )
    print(json.dumps({"sas_token": token}))
elif command == "read-blobs":
    container, prefix = sys.argv[3], sys.argv[4]
    client = service.get_container_client(container)
    blobs = []
    for item in client.list_blobs(name_starts_with=prefix, include=["metadata"]):
        data = client.download_blob(item.name).readall()
        text = gzip.decompress(data) if item.name.endswith(".gz") else data
        settings = item.content_settings
        blobs.append(
            {
                "name": item.name,
                "records": [json.loads(line) for line in text.decode().splitlines()],
                "ends_with_newline": text.endswith(b"\n"),
                "blob_type": str(item.blob_type.value if hasattr(item.blob_type, "value") else item.blob_type),
                "content_type": settings.content_type,
                "content_encoding": settings.content_encoding,
                "metadata": item.metadata,
                "content_md5": base64.b64encode(settings.content_md5).decode()
                if settings.content_md5
                else None,
                "stored_md5": base64.b64encode(hashlib.md5(data).digest()).decode(),
            }
        )
    blobs.sort(key=lambda b: b["name"])
    print(json.dumps(blobs))
else:
    sys.exit(f"unknown command {command}")
