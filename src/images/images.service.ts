import { constants, promises as fs } from 'node:fs';
import { Injectable } from '@nestjs/common';
import { ConflictError, ValidationFailedError } from '../common/domain-errors';
import { IdGenerator } from '../common/id-generator';
import { constraintViolation } from '../database/constraint-violation';
import { UnitOfWork } from '../database/unit-of-work';
import { ImageListDto, ImageResponseDto, RegisterImageDto } from './dto/image.dto';
import { ImageEntity } from './image.entity';
import { toImageResponse } from './image.mapper';
import { ImagesRepository } from './images.repository';

@Injectable()
export class ImagesService {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly images: ImagesRepository,
    private readonly ids: IdGenerator,
  ) {}

  /** Registers a base image; its file must be a readable regular file on the control plane now. */
  async register(dto: RegisterImageDto): Promise<ImageResponseDto> {
    await assertReadableFile(dto.path);
    await assertFormat(dto.path, dto.format);
    const image = Object.assign(new ImageEntity(), { id: this.ids.next(), name: dto.name, path: dto.path, format: dto.format });
    try {
      await this.uow.transaction(async (tx) => {
        if (await this.images.findByName(tx, dto.name)) throw imageExists(dto.name);
        await this.images.insert(tx, image);
      });
    } catch (error) {
      if (constraintViolation(error)?.kind === 'unique') throw imageExists(dto.name);
      throw error;
    }
    return toImageResponse(image);
  }

  async list(): Promise<ImageListDto> {
    const rows = await this.uow.read((tx) => this.images.list(tx));
    return { items: rows.map(toImageResponse) };
  }
}

function imageExists(name: string): ConflictError {
  return new ConflictError('image_exists', `An image named ${name} is already registered`, { field: 'name' });
}

async function assertReadableFile(path: string): Promise<void> {
  const problem = (message: string) => new ValidationFailedError([{ field: 'path', message }]);
  let stat;
  try {
    stat = await fs.stat(path);
  } catch {
    throw problem(`${path} does not exist on the control plane`);
  }
  if (!stat.isFile()) throw problem(`${path} is not a regular file`);
  try {
    await fs.access(path, constants.R_OK);
  } catch {
    throw problem(`${path} is not readable by the control plane`);
  }
}

/** The first bytes of every qcow2 file (QEMU's qcow2 spec: "QFI" and 0xfb). */
const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

/**
 * The file is what `format` says, as far as its first bytes tell: a qcow2
 * image starts with QCOW2_MAGIC, and a raw one that starts with it is a qcow2
 * file the guest would see as a disk of qcow2 metadata. Caught here, a wrong
 * format is a 400 naming it, not a 502 at the first create on each host.
 */
async function assertFormat(path: string, format: 'qcow2' | 'raw'): Promise<void> {
  const handle = await fs.open(path, 'r');
  const head = Buffer.alloc(QCOW2_MAGIC.length);
  try {
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  const qcow2 = head.equals(QCOW2_MAGIC);
  if (format === 'qcow2' && !qcow2) throw new ValidationFailedError([{ field: 'format', message: `is qcow2, but ${path} is not a qcow2 image (it does not start with QFI\\xfb)` }]);
  if (format === 'raw' && qcow2) throw new ValidationFailedError([{ field: 'format', message: `is raw, but ${path} is a qcow2 image: register it as qcow2` }]);
}
