"""Record a synthetic moving pattern into a store, then read frames back by number, index and time.

Usage: python examples/quickstart.py [STORE_DIR]   (default: a new temporary directory)
"""

import sys
import tempfile
import time

import cv2
import numpy as np

import imgstore


def camera_frame(i: int, shape=(240, 320)) -> np.ndarray:
    """A grey test frame: a bright disc moving across a gradient, with the frame number drawn in."""
    h, w = shape
    img = np.tile(np.linspace(40, 120, w, dtype=np.uint8), (h, 1))
    cv2.circle(img, ((10 + 7 * i) % w, h // 2), 18, 255, -1)
    cv2.putText(img, f"#{i}", (8, h - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    return img


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="imgstore-demo-") + "/store"
    t0 = time.time()

    # write: 250 frames at a nominal 25 fps, camera numbers starting at 1000, in chunks of 100
    with imgstore.new_for_format(
        "png", path=path, imgshape=(240, 320), chunksize=100, metadata={"experiment": "quickstart", "fps": 25}
    ) as store:
        for i in range(250):
            store.add_image(camera_frame(i), frame_number=1000 + i, frame_time=t0 + i / 25)
            if i % 50 == 0:
                store.add_extra_data(temperature_c=21.0 + i / 100)

    # read back
    store = imgstore.new_for_filename(path)
    print(
        f"{path}: {store.frame_count} frames in chunks {store.chunks}, "
        f"numbers {store.frame_min:.0f}..{store.frame_max:.0f}, {store.duration:.2f} s"
    )

    img, (number, when) = store.get_image(1100)  # by camera frame number
    print(f"frame #{number}: shape {img.shape}, taken {store.convert_frame_time_to_datetime(when)}")

    img, (number, when) = store.get_image(None, frame_index=0)  # by position in the store
    print(f"first frame is #{number}")

    img, (number, when) = store.get_nearest_image(t0 + 5.0)  # by time
    print(f"frame nearest t0+5s is #{number} at t0+{when - t0:.2f}s")

    assert np.array_equal(img, camera_frame(number - 1000)), "png is lossless: pixels must match"
    print(store.get_extra_data())
    store.close()


if __name__ == "__main__":
    main()
