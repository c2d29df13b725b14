import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { on } from '../database/repository-on';
import type { Tx } from '../database/unit-of-work';
import { ImageEntity } from './image.entity';

/** At most this many images are listed; a control plane has a handful of base images, not thousands. */
export const MAX_IMAGES_LISTED = 500;

@Injectable()
export class ImagesRepository {
  constructor(@InjectRepository(ImageEntity) private readonly images: Repository<ImageEntity>) {}

  async insert(tx: Tx, image: ImageEntity): Promise<void> {
    await on(this.images, tx).createQueryBuilder().insert().values(image).updateEntity(false).execute();
  }

  findByName(tx: Tx, name: string): Promise<ImageEntity | null> {
    return on(this.images, tx).findOneBy({ name });
  }

  list(tx: Tx): Promise<ImageEntity[]> {
    return on(this.images, tx).find({ order: { name: 'ASC' }, take: MAX_IMAGES_LISTED });
  }
}
