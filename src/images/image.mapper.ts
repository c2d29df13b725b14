import type { ImageRef } from '@vmplane/sdk';
import { isoTime } from '../common/iso-time';
import { ImageResponseDto } from './dto/image.dto';
import type { ImageEntity } from './image.entity';

export function toImageResponse(image: ImageEntity): ImageResponseDto {
  return {
    id: image.id,
    name: image.name,
    path: image.path,
    format: image.format,
    created_at: isoTime(image.createdAt),
    updated_at: isoTime(image.updatedAt),
  };
}

/** What the hypervisor SDK needs to put the image on a host. */
export function toImageRef(image: ImageEntity): ImageRef {
  return { id: image.id, name: image.name, path: image.path, format: image.format };
}
