"""Jobs (training, fine-tuning, downloads, inference batches). Datasets ask whether a job still uses them."""

from __future__ import annotations

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel

from stratus.db.repository import Repository

# A job in one of these states may still read its dataset.
ACTIVE_STATES = ("queued", "starting", "running", "stopping")


class JobRepository(Repository):
    collection_name = "jobs"
    indexes = (
        IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_created"),
        IndexModel([("dataset_id", ASCENDING), ("status", ASCENDING)], name="dataset_status"),
    )

    async def dataset_in_use(self, dataset_id: ObjectId) -> bool:
        return (
            await self.collection.find_one({"dataset_id": dataset_id, "status": {"$in": list(ACTIVE_STATES)}})
            is not None
        )
