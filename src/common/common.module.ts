import { Global, Module } from '@nestjs/common';
import { Clock, SystemClock } from './clock';
import { IdGenerator, UuidV7Generator } from './id-generator';
import { MathRandomSource, RandomSource } from './random-source';

/** The edges tests replace: time, ids and randomness. */
@Global()
@Module({
  providers: [
    { provide: Clock, useClass: SystemClock },
    { provide: IdGenerator, useFactory: () => new UuidV7Generator() },
    { provide: RandomSource, useClass: MathRandomSource },
  ],
  exports: [Clock, IdGenerator, RandomSource],
})
export class CommonModule {}
